state show pharmacy --lake lake
