module gcm.example/cacheprog

go 1.22
