"""The template pattern's generator (SPEC 3.10): `python -m builder --variable-file vars.yaml
--output-dir DIR [--name NAME] [--force]` renders skeleton/ into a complete tabular pattern."""
