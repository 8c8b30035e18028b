"""Storage: segment file layout, the SQLite catalogue and the durability protocol. Nothing else builds paths or SQL."""
