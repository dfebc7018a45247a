"""Writing things out: SBML, PEtab, and run folders (atomic, with a manifest, never over what il2als did not write).
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("PREEQ", "condition_id", "observable_id", "petab_tables", "write_petab", "lint",), "petab"),
    **dict.fromkeys(("atomic_dir", "write_rows", "atomic_file", "check_output", "write_manifest", "environment",
                    "csv_to_parquet", "OutputError", "MANIFEST_MARK", "finish_run", "parquet_copies", "prepare_outputs",),
                    "run_folder"),
    **dict.fromkeys(("ANNOTATION_NS", "HOLD", "formula", "unit_id", "SbmlExport", "to_sbml",), "sbml"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
