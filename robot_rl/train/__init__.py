"""Training machinery: replay buffers, collection, the online and offline loops, logging, checkpoints, export."""
