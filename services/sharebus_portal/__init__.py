"""The department portal: a server-rendered web console for officials and the bureau."""
