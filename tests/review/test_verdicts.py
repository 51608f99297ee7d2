"""Verdicts → verdict log + labelled index: validation, agreement, conflicts, revisions, re-imports."""

from __future__ import annotations

import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.errors import DfdetectError
from dfdetect.extract import extract
from dfdetect.model.crops import ExtractOptions
from dfdetect.records import FAKE, INDEX_COLUMNS, REAL, read_crops, read_index
from dfdetect.review.verdicts import import_verdicts, log_path
from dfdetect.sample_data import london_images

HEADER = "path,verdict,reviewer,note,time\n"


@pytest.fixture
def faces() -> list[str]:
    return [str(p) for p in london_images()[:3]]


def write_csv(path, rows: list[tuple[str, str, str, str, str]]):
    path.write_text(HEADER + "".join(",".join(f'"{v}"' for v in row) + "\n" for row in rows))
    return path


def test_agreed_verdicts_become_an_index_that_extract_reads(faces, tmp_path):
    verdicts = write_csv(tmp_path / "v.csv", [
        (faces[0], "fake", "alice", "blend line at the jaw", "2026-12-02T09:00:00.000Z"),
        (faces[1], "real", "alice", "", "2026-12-02T09:01:00.000Z"),
        (faces[2], "unsure", "alice", "too small to tell", "2026-12-02T09:02:00.000Z"),
    ])
    report = import_verdicts([verdicts], tmp_path / "reviewed.parquet")
    assert report.labelled == {"real": 1, "fake": 1} and report.undecided == [faces[2]]
    assert report.new_verdicts == 3 and report.conflicts == [] and report.revised == []
    index = read_index(tmp_path / "reviewed.parquet")
    assert list(index.columns) == INDEX_COLUMNS
    assert dict(zip(index["path"], index["label"])) == {faces[0]: FAKE, faces[1]: REAL}
    assert set(index["media_type"]) == {"image"} and set(index["split"]) == {"train"}
    assert set(index["dataset"]) == {"reviewed"}
    log = pd.read_parquet(log_path(tmp_path / "reviewed.parquet"))
    assert log["note"].tolist() == ["blend line at the jaw", "", "too small to tell"]
    assert log["time"].tolist()[0] == "2026-12-02T09:00:00.000+00:00"

    summary = extract(tmp_path / "reviewed.parquet", tmp_path / "crops", ExtractOptions(size=64))
    crops = read_crops(tmp_path / "crops")
    assert summary["faces"] == 2 and dict(zip(crops["source_path"], crops["label"])) == {faces[0]: 1, faces[1]: 0}


def test_a_conflicting_second_verdict_is_kept_reported_and_left_out_until_revised(faces, tmp_path):
    out = tmp_path / "reviewed.parquet"
    import_verdicts([write_csv(tmp_path / "alice.csv", [(faces[0], "fake", "alice", "", "2026-12-02T09:00:00Z"),
                                                        (faces[1], "real", "alice", "", "2026-12-02T09:00:00Z")])], out)
    report = import_verdicts([write_csv(tmp_path / "bob.csv", [(faces[0], "real", "bob", "looks fine",
                                                                "2026-12-02T10:00:00Z")])], out)
    assert [(c.path, c.verdicts) for c in report.conflicts] == [(faces[0], {"alice": "fake", "bob": "real"})]
    assert read_index(out)["path"].tolist() == [faces[1]]  # the disputed file has no label yet
    assert len(pd.read_parquet(log_path(out))) == 3  # neither verdict overwritten

    report = import_verdicts([write_csv(tmp_path / "bob2.csv", [(faces[0], "fake", "bob", "missed the seam",
                                                                 "2026-12-02T11:00:00Z")])], out)
    assert report.conflicts == [] and report.revised == [faces[0]]
    index = read_index(out)
    assert dict(zip(index["path"], index["label"])) == {faces[0]: FAKE, faces[1]: REAL}
    assert pd.read_parquet(log_path(out))["verdict"].tolist() == ["fake", "real", "real", "fake"]


def test_importing_the_same_file_twice_adds_nothing(faces, tmp_path):
    verdicts = write_csv(tmp_path / "v.csv", [(faces[0], "fake", "alice", "", "2026-12-02T09:00:00Z")])
    import_verdicts([verdicts], tmp_path / "r.parquet")
    report = import_verdicts([verdicts], tmp_path / "r.parquet")
    assert (report.new_verdicts, report.repeated) == (0, 1)
    assert len(pd.read_parquet(log_path(tmp_path / "r.parquet"))) == 1


def test_bad_rows_are_named_by_line_and_nothing_is_imported(faces, tmp_path):
    verdicts = write_csv(tmp_path / "v.csv", [(faces[0], "fake", "alice", "", "2026-12-02T09:00:00Z"),
                                              (faces[1], "probably", "alice", "", "2026-12-02T09:00:00Z"),
                                              ("", "real", "", "", "yesterday")])
    with pytest.raises(DfdetectError) as caught:
        import_verdicts([verdicts], tmp_path / "r.parquet")
    message = caught.value.one_line()
    assert "4 bad rows" in message and "line 3: verdict 'probably'" in message
    assert "line 4: empty path" in message and "line 4: no reviewer" in message
    assert not (tmp_path / "r.parquet").exists() and not log_path(tmp_path / "r.parquet").exists()


def test_a_csv_without_the_verdict_columns_is_refused(tmp_path):
    (tmp_path / "v.csv").write_text("file,label\nx.jpg,fake\n")
    with pytest.raises(DfdetectError, match="lacks columns"):
        import_verdicts([tmp_path / "v.csv"], tmp_path / "r.parquet")


def test_a_labelled_file_that_is_gone_is_reported_not_indexed(faces, tmp_path):
    gone = str(tmp_path / "deleted.jpg")
    report = import_verdicts([write_csv(tmp_path / "v.csv", [(gone, "fake", "alice", "", "2026-12-02T09:00:00Z")])],
                             tmp_path / "r.parquet")
    assert report.missing == [gone] and read_index(tmp_path / "r.parquet").empty


def test_cli_exit_status_says_whether_conflicts_wait(faces, tmp_path, capsys):
    out = str(tmp_path / "r.parquet")
    a = write_csv(tmp_path / "a.csv", [(faces[0], "fake", "alice", "", "2026-12-02T09:00:00Z")])
    b = write_csv(tmp_path / "b.csv", [(faces[0], "real", "bob", "", "2026-12-02T09:30:00Z")])
    assert main(["review", "import", str(a), "--out", out]) == 0
    assert main(["review", "import", str(b), "--out", out]) == 1
    assert f"conflict, left out of the index until a reviewer revises: {faces[0]}: alice says fake, bob says real" \
        in capsys.readouterr().out
