-- Mends from reading the change once more (no behaviour changes):
-- * ccvec.duplicate_edges (0008) has had no caller since dedup searches in batches
--   (ccvec.duplicate_edges_batch, 0019): dropped;
-- * ccvec.phash_match counts differing bits with ccvec.hamming instead of repeating its expression.

DROP FUNCTION ccvec.duplicate_edges(bigint, uuid[]);

CREATE OR REPLACE FUNCTION ccvec.phash_match(a bigint, b bigint, p_dihedral boolean)
RETURNS TABLE (distance integer, transform text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ccvec.hamming(t.phash, b), t.transform
    FROM ccvec.phash_dihedral(a) t
    WHERE p_dihedral OR t.transform = 'identity'
    ORDER BY 1, t.transform = 'identity' DESC, t.transform
    LIMIT 1
$$;
