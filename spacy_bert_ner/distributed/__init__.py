"""Running the packaged model over corpora on a cluster engine (Ray Data)."""
