"""Image helpers with no Django: what a file really is, whether it is safe to open, colour
normalising and perceptual hashes. Photo intake and verify both use them; limits are passed in."""
