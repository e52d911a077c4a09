"""What the UI and the CLI both show: tables, charts, and debrief report files."""
