CREATE OR REPLACE FUNCTION ccvec.ungrouped_images() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.image_feature f WHERE NOT EXISTS
    (SELECT 1 FROM ccvec.duplicate_member d WHERE d.identifier = f.identifier)
$$;
COMMENT ON FUNCTION ccvec.ungrouped_images() IS
    'Number of loaded images without a near-duplicate group: `ccvec run` skips dedup when it is 0.';
