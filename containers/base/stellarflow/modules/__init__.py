"""Science modules: one per CWL CommandLineTool in cwl/tools/, each run as ``python -m``."""
