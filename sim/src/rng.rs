//! Common-random-number streams: every draw is keyed by what it describes.
