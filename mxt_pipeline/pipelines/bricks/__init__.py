"""The bricks of the X-band pipelines (one module per brick) and their data codecs."""
