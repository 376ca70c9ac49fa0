"""The model loader (SPEC 2.2): `python -m src.loader --source ... --dest ...`, the init
container's command, and the fetch/verify/install code the API's reloader shares with it."""
