run inlet.toml
