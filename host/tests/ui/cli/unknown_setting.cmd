sync sample --to lake --set patient=100
