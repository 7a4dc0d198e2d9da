"""Posts, share links and Content Credentials (built in the gallery/provenance issue)."""
