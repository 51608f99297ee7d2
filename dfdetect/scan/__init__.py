"""Batch inference of an exported detector over images and videos (`dfdetect scan`)."""

from dfdetect.scan.aggregate import AGGREGATIONS, aggregate, register_aggregation
from dfdetect.scan.pipeline import ScanSummary, scan_paths
from dfdetect.scan.session import OnnxModel
from dfdetect.scan.writers import JsonlWriter, read_jsonl, recorded_keys

__all__ = ["AGGREGATIONS", "JsonlWriter", "OnnxModel", "ScanSummary", "aggregate", "read_jsonl", "recorded_keys",
           "register_aggregation", "scan_paths"]
