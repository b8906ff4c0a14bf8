"""Output and input paths are checked before any work, with one clear error each."""

import pytest

from cellshift._io import check_writable
from cellshift.cli._common import read_counts


def test_check_writable_refuses_existing_outputs_and_paths_under_a_file(tmp_path):
    existing = tmp_path / "table.csv"
    existing.write_text("x")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        check_writable(existing, overwrite=False)
    assert check_writable(existing, overwrite=True) == existing
    assert check_writable(tmp_path / "new" / "deeper" / "out.csv", overwrite=False).name == "out.csv"
    with pytest.raises(ValueError, match="is not a writable folder; choose another --out"):
        check_writable(existing / "out.csv", overwrite=False)


def test_read_counts_names_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_counts(str(tmp_path / "missing.h5ad"), None)
    broken = tmp_path / "broken.h5ad"
    broken.write_text("not an AnnData file")
    with pytest.raises(ValueError, match="cannot read .* as .h5ad"):
        read_counts(str(broken), None)
