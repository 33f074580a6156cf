DROP FUNCTION ccvec.knn_adjacency_current(bigint);
DROP FUNCTION ccvec.knn_adjacency_put(bigint, bigint, bigint, bytea, bytea, bytea, bytea);
DROP FUNCTION ccvec.knn_adjacency_begin(boolean);
DROP TABLE ccvec.knn_adjacency;
DROP FUNCTION ccvec.knn_edge_changes();
DROP TRIGGER knn_edge_change ON ccvec.knn_edge;
DROP FUNCTION ccvec.knn_edge_change_trigger();
DROP SEQUENCE ccvec.knn_edge_change;
