"""Code for the spaCy project workflow only: fetching and preparing the datasets
and training several members at once."""
