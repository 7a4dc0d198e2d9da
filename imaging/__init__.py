"""Image helpers with no Django: what a file really is, the limits checked before decoding,
decoding no more than needed, colour normalising and perceptual hashes. Photo intake and verify
both use them; limits are passed in."""
