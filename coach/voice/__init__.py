"""Voice: an answer spoken and transcribed on this machine, the panel heard aloud, and delivery measured
from the voice itself. Nothing here touches the network; the models come from the package (PocketSphinx,
espeak-ng) or from `coach voice pull` (whisper.cpp, piper)."""
