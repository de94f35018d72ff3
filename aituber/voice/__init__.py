"""The character's voice: reading normalisation and clause splitting (pure cores), the speech engines
(embedded OpenJTalk, VOICEVOX-compatible HTTP) behind one protocol, WAV helpers and the local audio
device. The output that speaks replies is aituber.outputs.voice."""
