module gcm.example/words

go 1.22
