"""Files lossport reads and writes: atomic writes, tensor files, images, file digests."""
