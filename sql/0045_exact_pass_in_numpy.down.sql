DROP FUNCTION ccvec.knn_run_settings(bigint);
DROP FUNCTION ccvec.embeddings_of(text, uuid[]);
DROP FUNCTION ccvec.embeddings_after(text, uuid, bigint);
