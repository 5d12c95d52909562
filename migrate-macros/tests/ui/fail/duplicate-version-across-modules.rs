use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn;

mod users {
    use super::*;

    #[migration_script(version = "2.0.0")]
    pub struct CreateUsers;
}

mod orders {
    use super::*;

    #[migration_script(version = "2.0.0")]
    pub struct CreateOrders;
}

impl MigrationScript for users::CreateUsers {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}
impl MigrationScript for orders::CreateOrders {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {}
