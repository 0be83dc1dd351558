sync sample --to lake --set tables."public.x=1
