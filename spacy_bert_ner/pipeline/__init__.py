"""What a packaged model needs at run time: the bert_ner component and its ensemble,
their layers, decoding, and the registered functions a pipeline config names."""
