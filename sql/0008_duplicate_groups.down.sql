DROP FUNCTION IF EXISTS ccvec.duplicate_regroup(bigint, uuid[]);
DROP FUNCTION IF EXISTS ccvec.derived_signs(real, real, real, real, real, real, smallint, real, real);
DROP FUNCTION IF EXISTS ccvec.canonical_order(text[]);
DROP FUNCTION IF EXISTS ccvec.duplicate_edges(bigint, uuid[]);
DROP TABLE IF EXISTS ccvec.duplicate_edge;
DROP FUNCTION IF EXISTS ccvec.hamming_neighbours_dihedral(bigint, integer);
DROP FUNCTION IF EXISTS ccvec.phash_dihedral(bigint);
DROP FUNCTION IF EXISTS ccvec.phash_transpose(bigint);
DROP FUNCTION IF EXISTS ccvec.put_image_cue(uuid, double precision, double precision, double precision, double precision, integer);
DROP TABLE IF EXISTS ccvec.image_cue;
DELETE FROM ccvec.duplicate_member;
ALTER TABLE ccvec.duplicate_member DROP COLUMN transform;
ALTER TABLE ccvec.duplicate_member DROP CONSTRAINT duplicate_member_matched_by_check;
ALTER TABLE ccvec.duplicate_member ADD CONSTRAINT duplicate_member_matched_by_check
    CHECK (matched_by IN ('canonical', 'phash', 'embedding'));
ALTER TABLE ccvec.duplicate_member ALTER COLUMN distance SET NOT NULL;
ALTER TABLE ccvec.duplicate_run DROP COLUMN link, DROP COLUMN k, DROP COLUMN dihedral;

