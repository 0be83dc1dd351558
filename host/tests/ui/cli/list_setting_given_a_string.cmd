sync postgres --to lake --allow-private-network --set host=127.0.0.1 --set schemas=public --set user=app --set database=app
