-- A folder's report after files were deleted, renamed or moved out of it: their rows stay in the
-- database (in duplicate groups and clusters), and the report counted them as members "elsewhere",
-- so a photo whose copies were deleted still showed as a duplicate group, and an image whose cluster
-- mates were deleted as "alone here" rather than a singleton. The report now reads, for the images
-- of its folders that are gone, their duplicate group and cluster, and leaves them out of the sizes.
CREATE FUNCTION ccvec.report_gone(p_gone uuid[], p_level text DEFAULT 'default')
RETURNS TABLE (identifier uuid, group_id uuid, canonical boolean, cluster integer)
LANGUAGE sql STABLE AS $$
    SELECT g.identifier, d.group_id, d.canonical, k.cluster
    FROM unnest(p_gone) AS g(identifier)
    LEFT JOIN ccvec.duplicate_member d ON d.identifier = g.identifier
    LEFT JOIN ccvec.image_cluster k ON k.identifier = g.identifier AND k.level = p_level
    WHERE d.group_id IS NOT NULL OR k.cluster IS NOT NULL
$$;
COMMENT ON FUNCTION ccvec.report_gone(uuid[], text) IS
    'For images left out of a report (p_gone: loaded from its folders, their files gone since): the near-duplicate group (and whether the image is its canonical) and the cluster at p_level of each that has one, so the report takes them out of the groups'' and clusters'' sizes. Index lookups per identifier: cost grows with p_gone, not with the catalog.';
