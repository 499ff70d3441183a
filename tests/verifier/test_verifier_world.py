def test_world_is_valid(world, verify, codes):
    result = verify(world)
    assert codes(result) == []
    assert result.valid
    assert result.tree_size == len(world.leaves)
    assert result.stats["activity_records"] == 6
