"""The management report a CCTV scheme publishes: built from rows (`build`), rendered apart (`render`)."""
