"""Running a pipeline over documents: ``predict`` (files in, entities out,
resumable) and ``annotate`` (a corpus to entity rows, in this process or on
Ray), with one JSON shape for an entity."""
