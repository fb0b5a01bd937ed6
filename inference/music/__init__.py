"""Music: reading audio files, and the music features the network hears (EDGE's 35 per frame)."""
