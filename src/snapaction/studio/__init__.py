"""The studio: the whole loop in one local page (classes, webcam recording, training with live progress, live bars).

`project.py` owns the project folder, `jobs.py` runs one training at a time,
`live.py` classifies a stream from a sliding window, `app.py` is the FastAPI app.
"""
