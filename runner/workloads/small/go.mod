module gcm.example/small

go 1.22

require gcm.example/greet v1.1.0

require gcm.example/words v1.0.0 // indirect
