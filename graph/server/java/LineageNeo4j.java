// Runs an embedded Neo4j Community DBMS with only the Bolt connector, for `lineage server start`.
//
// Usage: java -cp 'lib/*:classes' LineageNeo4j <home-dir> <neo4j.conf>
// All settings come from the conf file that graph/server.py writes, so this file never changes
// when a setting does. When LINEAGE_NEO4J_PASSWORD is set (auth enabled), the `neo4j` user's
// password is set to it through the system database; it is read from the environment, never argv,
// so it does not show up in `ps`.
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

public final class LineageNeo4j {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: LineageNeo4j <home-dir> <neo4j.conf>");
            System.exit(2);
        }
        Path home = Path.of(args[0]);
        Path conf = Path.of(args[1]);
        DatabaseManagementService dbms =
                new DatabaseManagementServiceBuilder(home).loadPropertiesFromFile(conf).build();
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM/SIGINT run shutdown hooks: a clean shutdown checkpoints the store, so the next
        // start needs no recovery.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("LINEAGE_NEO4J_STOPPING");
            System.out.flush();
            dbms.shutdown();
            stopped.countDown();
        }, "lineage-shutdown"));

        String password = System.getenv("LINEAGE_NEO4J_PASSWORD");
        if (password != null && !password.isEmpty()) {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        }
        System.out.println("LINEAGE_NEO4J_READY");
        System.out.flush();
        stopped.await();
    }
}
