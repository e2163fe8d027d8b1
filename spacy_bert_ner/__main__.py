from spacy_bert_ner.cli import main

main()
