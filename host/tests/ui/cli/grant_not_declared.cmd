check google-sheets --allow-private-network --grant github --set endpoint=http://127.0.0.1:9 --set spreadsheets=[{id="x"}]
