DROP FUNCTION IF EXISTS ccvec.knn_recall(bigint, uuid[]);
DROP FUNCTION IF EXISTS ccvec.duplicate_edges_batch(bigint, uuid[], boolean);
DROP FUNCTION IF EXISTS ccvec.unembedded_count(text);
DROP FUNCTION IF EXISTS ccvec.phash_match(bigint, bigint, boolean);
