module gcm.example/wide

go 1.22

require gcm.example/words v1.0.0
