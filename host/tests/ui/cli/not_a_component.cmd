sync ./bad.wasm --to lake
