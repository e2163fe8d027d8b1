"""Reading and writing data: format readers (CoNLL columns, Hugging Face exports,
the GMB CSV) that know files and line numbers, tag schemes, and the Doc/DocBin
builder and writer."""
