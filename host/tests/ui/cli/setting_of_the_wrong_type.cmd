sync postgres --to lake --allow-private-network --set host=127.0.0.1 --set port="5432" --set user=app --set database=app
