-- Duplicate groups made by the first release (its runs have no average-linkage threshold: link IS
-- NULL; migration 0008 added link, flips and rotations) count as ungrouped, so the next `ccvec run`
-- regroups the catalog by the current rules. It said 'dedup: up to date' on an upgraded first-release
-- catalog for ever, and kept missing what those rules find (a mirrored copy, for one).
CREATE OR REPLACE FUNCTION ccvec.ungrouped_images() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN (SELECT r.link IS NULL FROM ccvec.duplicate_run r ORDER BY r.id DESC LIMIT 1)
                THEN (SELECT count(*) FROM ccvec.image_feature)
                ELSE (SELECT count(*) FROM ccvec.image_feature f WHERE NOT EXISTS
                      (SELECT 1 FROM ccvec.duplicate_member d WHERE d.identifier = f.identifier))
           END
$$;
COMMENT ON FUNCTION ccvec.ungrouped_images() IS
    'Number of loaded images without a near-duplicate group, every loaded image while the groups are the first release''s (its runs have no link threshold): `ccvec run` skips dedup when it is 0.';
