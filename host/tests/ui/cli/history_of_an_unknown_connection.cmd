history nobody --lake lake
