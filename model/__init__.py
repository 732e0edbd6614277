"""The data scientist's folder: the training recipe Slipway trains, exports and serves."""
