"""`dfdetect review import verdicts.csv --out reviewed.parquet`: people's verdicts → training labels.

Every verdict ever imported is kept in a log beside the index (`reviewed.verdicts.parquet`); the
labelled index (`reviewed.parquet`, the index.parquet schema that extract and fit read) is rebuilt
from the log on every import. A file gets a label when its reviewers agree: each reviewer's latest
verdict counts (a reviewer may revise their own), `unsure` abstains. When reviewers disagree the file
is left out of the index and reported as a conflict; neither verdict is dropped or overwritten, and
the conflict ends when a reviewer revises theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from dfdetect.errors import DfdetectError
from dfdetect.media.io import sniff_media_type
from dfdetect.records import INDEX_COLUMNS, LABELS, SPLITS, IndexRow, write_rows

VERDICT_COLUMNS = ("path", "verdict", "reviewer", "note", "time")
VERDICTS = ("real", "fake", "unsure")
LOG_COLUMNS = (*VERDICT_COLUMNS, "verdicts_file", "imported_at")
REVIEWED_DATASET = "reviewed"
MAX_REPORTED_PROBLEMS = 5


@dataclass
class Conflict:
    path: str
    verdicts: dict[str, str]  # reviewer → latest verdict

    def describe(self) -> str:
        said = ", ".join(f"{reviewer} says {verdict}" for reviewer, verdict in sorted(self.verdicts.items()))
        return f"{self.path}: {said}"


@dataclass
class ImportReport:
    index: Path
    log: Path
    new_verdicts: int  # rows added to the log by this import
    repeated: int  # rows of the CSV already in the log (the same file imported twice)
    labelled: dict[str, int]  # label name → files in the index
    conflicts: list[Conflict] = field(default_factory=list)
    revised: list[str] = field(default_factory=list)  # files where a reviewer changed their own verdict
    undecided: list[str] = field(default_factory=list)  # only "unsure" verdicts
    missing: list[str] = field(default_factory=list)  # labelled, but the file is no longer readable media


def log_path(index: str | Path) -> Path:
    """reviewed.parquet → reviewed.verdicts.parquet: the log lives beside the index built from it."""
    index = Path(index)
    return index.with_name(f"{index.stem}.verdicts.parquet")


def read_verdicts(path: str | Path) -> pd.DataFrame:
    """A verdicts.csv, checked row by row: every problem is named by line number, and nothing is
    imported from a file with any problem."""
    path = Path(path)
    if not path.is_file():
        raise DfdetectError("missing_path", "verdicts file not found", path, "save it from the review gallery")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DfdetectError("bad_input", f"not a readable CSV ({exc.__class__.__name__})", path,
                            "save it again from the review gallery") from exc
    missing = [c for c in VERDICT_COLUMNS if c not in frame.columns]
    if missing:
        raise DfdetectError("bad_input", f"verdicts file lacks columns {missing}", path,
                            f"it needs the columns {list(VERDICT_COLUMNS)}")
    frame = frame[list(VERDICT_COLUMNS)].apply(lambda column: column.str.strip())
    problems = []
    for line, row in enumerate(frame.itertuples(index=False), start=2):  # line 1 is the header
        if not row.path:
            problems.append(f"line {line}: empty path")
        if row.verdict not in VERDICTS:
            problems.append(f"line {line}: verdict {row.verdict!r} is not one of {list(VERDICTS)}")
        if not row.reviewer:
            problems.append(f"line {line}: no reviewer")
        if parse_time(row.time) is None:
            problems.append(f"line {line}: time {row.time!r} is not an ISO 8601 time")
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED_PROBLEMS])
        more = f" (and {len(problems) - MAX_REPORTED_PROBLEMS} more)" if len(problems) > MAX_REPORTED_PROBLEMS else ""
        raise DfdetectError("bad_input", f"{len(problems)} bad rows: {shown}{more}", path,
                            "fix those rows or save the verdicts again from the gallery; nothing was imported")
    frame["time"] = [parse_time(t).isoformat(timespec="milliseconds") for t in frame["time"]]  # sorts as text
    return frame


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (a time without a zone is taken as UTC); None if unreadable."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def label_files(log: pd.DataFrame) -> tuple[dict[str, str], list[Conflict], list[str], list[str]]:
    """From the whole log: the agreed label per file, the conflicts, the files whose reviewer revised
    a verdict, and the files with only `unsure` verdicts."""
    labels, conflicts, revised, undecided = {}, [], [], []
    for path, rows in log.sort_values("time", kind="stable").groupby("path", sort=True):
        latest = rows.groupby("reviewer")["verdict"].last().to_dict()
        if any(r["verdict"].nunique() > 1 for _, r in rows.groupby("reviewer")):
            revised.append(path)
        decided = {verdict for verdict in latest.values() if verdict != "unsure"}
        if len(decided) > 1:
            conflicts.append(Conflict(path, latest))
        elif decided:
            labels[path] = decided.pop()
        else:
            undecided.append(path)
    return labels, conflicts, revised, undecided


def import_verdicts(verdict_files: list[str | Path], out: str | Path, split: str = "train") -> ImportReport:
    """Add the verdicts files' rows to the log beside `out` and rebuild the labelled index `out` from it."""
    if split not in SPLITS:
        raise DfdetectError("bad_config", f"unknown split {split!r}", None, f"choose one of {list(SPLITS)}")
    out = Path(out)
    log_file = log_path(out)
    previous = pd.read_parquet(log_file) if log_file.exists() else pd.DataFrame(columns=list(LOG_COLUMNS))
    imported_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    incoming = pd.concat([read_verdicts(f).assign(verdicts_file=str(Path(f).resolve()), imported_at=imported_at)
                          for f in verdict_files], ignore_index=True)
    key = list(VERDICT_COLUMNS)
    seen = set(map(tuple, previous[key].itertuples(index=False)))
    fresh = incoming[[tuple(row) not in seen for row in incoming[key].itertuples(index=False)]]
    fresh = fresh.drop_duplicates(subset=key)
    log = pd.concat([previous, fresh], ignore_index=True)[list(LOG_COLUMNS)]

    labels, conflicts, revised, undecided = label_files(log)
    rows, missing = [], []
    for path, verdict in labels.items():
        media_type = sniff_media_type(path)
        if media_type is None:
            missing.append(path)
            continue
        rows.append(IndexRow(path=path, media_type=media_type, label=LABELS[verdict], dataset=REVIEWED_DATASET,
                             split=split, group=path))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = log_file.with_name(log_file.name + ".tmp")
    log.to_parquet(tmp, index=False)
    tmp.replace(log_file)
    write_rows(rows, out, INDEX_COLUMNS)
    counts = {name: sum(r.label == label for r in rows) for name, label in LABELS.items()}
    return ImportReport(index=out, log=log_file, new_verdicts=len(fresh), repeated=len(incoming) - len(fresh),
                        labelled=counts, conflicts=conflicts, revised=revised, undecided=undecided, missing=missing)
