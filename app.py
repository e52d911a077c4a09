"""The browser UI as a script: `python app.py`, or `gradio app.py` for Gradio's reload mode (which
imports this file and serves its `demo`). The UI itself is the package `coach.ui`; `coach ui` is the
usual way to start it."""

from coach.config import Settings
from coach.ui import build_demo, launch

settings = Settings.from_env()
demo = build_demo(settings)

if __name__ == "__main__":
    launch(settings, demo)
